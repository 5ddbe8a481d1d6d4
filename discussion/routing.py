from django.urls import path

from discussion.consumers import BoardConsumer

websocket_urlpatterns = [
    path("ws/w/<slug:slug>/board/", BoardConsumer.as_asgi()),
]
