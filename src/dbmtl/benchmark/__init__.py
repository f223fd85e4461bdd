"""Speed, FLOP/s and memory of dbmtl beside MMseqs2 (`dbmtl benchmark`)."""
