"""Real-time anomaly detection for metric and sensor streams."""
