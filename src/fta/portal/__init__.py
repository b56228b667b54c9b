"""Portal: the FastAPI application (REST API and web pages). It holds no Docker rights."""
