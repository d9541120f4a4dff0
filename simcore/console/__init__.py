"""The console's services (issue 19): console users and their passwords (users), server-side
sessions with their CSRF token and the login throttle (sessions), and the read models the pages
show that no other service gives (views: dashboard counts, prefix search, a SIM's events).

Used by api/console and tools/console_cli; imports simcore's own services only.
"""
