"""The plugin's ASGI application with static files served, for the browser tests.

In production a web server in front of NetBox serves /static/; netbox_chatbox.asgi only does so with
DEBUG on, and DEBUG would add Django's debug toolbar to every page the browser sees. Django's
ASGIStaticFilesHandler serves them here (from the finders: NetBox's and the plugin's files).
"""
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

from netbox_chatbox.asgi import application as chatbox_application

application = ASGIStaticFilesHandler(chatbox_application)
