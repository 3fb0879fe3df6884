"""NetBox's own WSGI application with static files served, for the browser tests of a NetBox without
WebSockets (gunicorn, as NetBox ships). See asgi.py for why static files are served here."""
from django.contrib.staticfiles.handlers import StaticFilesHandler
from netbox.wsgi import application as netbox_application

application = StaticFilesHandler(netbox_application)
