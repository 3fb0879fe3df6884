"""NetBox's own WSGI application with static files served, for the browser tests of a NetBox without
WebSockets (gunicorn, as NetBox ships). In production the web server in front of gunicorn serves /static/
(tests/test_deployment.py runs that layout with nginx); here Django's handler does, with DEBUG off."""

from django.contrib.staticfiles.handlers import StaticFilesHandler
from netbox.wsgi import application as netbox_application

application = StaticFilesHandler(netbox_application)
