from django.urls import path

from llm_gateway.consumers import ChatConsumer

websocket_urlpatterns = [
    path("ws/w/<slug:slug>/chat/<int:conversation_id>/", ChatConsumer.as_asgi()),
]
