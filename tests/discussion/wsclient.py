"""channels.testing.WebsocketCommunicator without importing daphne.

`channels.testing/__init__.py` imports ChannelsLiveServerTestCase, which needs daphne (not a
dependency of this project). If daphne is missing, load the websocket submodule on its own.
"""

try:
    from channels.testing import WebsocketCommunicator  # noqa: F401
except ModuleNotFoundError:  # pragma: no cover - depends on the environment
    import os
    import sys
    import types

    import channels

    if "channels.testing" not in sys.modules or not hasattr(sys.modules["channels.testing"], "__path__"):
        package = types.ModuleType("channels.testing")
        package.__path__ = [os.path.join(os.path.dirname(channels.__file__), "testing")]
        sys.modules["channels.testing"] = package
    from channels.testing.websocket import WebsocketCommunicator  # noqa: F401
