"""The portal's pages: thin handlers over the same services as the API."""
