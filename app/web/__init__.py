"""The pages: server-rendered HTML over the same service calls as the API.

A page route is as thin as an API route: its dependencies (the signed-in person, the
service bound to the request's unit of work) come in, it makes the service call the API
makes, and a template renders the schema that call returns. Nothing here computes a
figure. ``templating`` holds the Jinja2 environment and the filters that format figures,
``sessions`` the sign-in cookie and the CSRF check, ``pages`` the route class that turns
our errors into HTML and the page frame, ``forms`` the way from a form to a request
schema, and ``router`` gathers the page routers and the static files. ``status`` is the
public status page (no sign-in).
"""
