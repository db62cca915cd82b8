"""Collection: read tracked groups through the networks' APIs and turn changes into events.

One collector module a network (`vk.py`); change detection, chunked commits, run history
and scheduling are shared. Collectors never import blueprints.
"""
