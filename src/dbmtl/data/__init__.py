"""Records -> what the model trains on: the shared data catalog, token layouts, the LM corpus and its
shards, labeled-task pools, and the token-budget rule every batch follows."""
