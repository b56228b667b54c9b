"""The socket proxy: the worker's only way to the Docker engine.

It sits in front of the engine's socket and lets through the calls the worker makes and
nothing else (`routes`), decodes every request body itself and sends the engine only its own
canonical re-encoding of what it judged (`canonical`, `bodies`), and keeps to the objects of
this installation (`scope`). It depends on the standard library and h11 only, so its image
carries none of the application.
"""
