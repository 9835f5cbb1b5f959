"""What the three audiences (staff pages, the API, the public site) share at the HTTP
edge: who a request is for, security headers, error pages and problem documents,
request logging, the tus protocol, and serving stored media with Range.

Blueprints import this package; services never do.
"""
