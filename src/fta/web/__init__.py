"""Request plumbing below the routes: dependencies, problem responses, middleware, streams."""
