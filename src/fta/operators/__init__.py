"""The operator's console: what a platform administrator does to clients' accounts."""
