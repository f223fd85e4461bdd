"""`dbmtl serve`: predictions over HTTP (FastAPI + uvicorn) and a page to paste or upload sequences."""
