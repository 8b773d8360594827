"""One Locust file per scenario; each runs on its own with ``locust -f loadtests/scenarios/<name>.py``."""
