"""Websocket routes of every app, gathered in one list."""

from coding.routing import websocket_urlpatterns as coding_ws
from discussion.routing import websocket_urlpatterns as discussion_ws
from llm_gateway.routing import websocket_urlpatterns as gateway_ws
from workshops.routing import websocket_urlpatterns as workshops_ws

websocket_urlpatterns = [*workshops_ws, *gateway_ws, *coding_ws, *discussion_ws]
