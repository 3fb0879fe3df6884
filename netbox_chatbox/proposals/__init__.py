"""Changes through the chat: the model proposes, the user reviews and applies (docs/changes.md).

models.py holds the stored Proposal, engine.py validates and applies operations exactly as NetBox's
REST API writes them, tools.py is what the model calls. Kept import-free so models.py can load it early.
"""
