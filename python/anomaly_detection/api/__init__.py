"""The HTTP service: ``create_app(settings)`` or ``router`` to mount in an existing FastAPI app.

>>> from anomaly_detection.api import create_app
>>> app = create_app()                     # uvicorn can serve it: uvicorn.run(app)
"""

from anomaly_detection.api.app import create_app, get_service, router
from anomaly_detection.api.collector import Collector, sensor_name_for
from anomaly_detection.api.service import AnomalyService

__all__ = ["AnomalyService", "Collector", "create_app", "get_service", "router", "sensor_name_for"]
