"""The store: everything crowdwatch measured and decided, kept safe for the console.

SQLite in WAL mode by default (one file, no set-up), the same interface on PostgreSQL for
deployments across machines. Times are UTC epoch seconds.

Typical use::

    from crowdwatch.store import open_store

    store = open_store("out/demo/crowdwatch.db")        # or "postgresql://user@host/db"
    store.latest_metrics("plaza")                       # newest sample of each zone
    store.metrics("plaza", "road", start=t0, end=t1)    # a time series
    store.active_alerts()                               # open alerts, newest first
    store.acknowledge(alert_id, "maria", "stewards sent")
    store.health()                                      # every camera's state and rate
    store.save_config(event_config, author="maria", note="raised gate warning")
    store.config_changes()                              # who changed what, when, old -> new
    store.recordings("plaza", start=t0, end=t1)         # video segments and heat-map snapshots
    run_id = store.start_run("plaza", "analyze")        # a run id for its metrics and alerts
    store.acquire_lease("host:1234", ttl_s=30)           # one engine per store
    store.enqueue_webhook(url, body, event_id)          # a webhook outbox that survives restarts

The schema is upgraded in place when an older store is opened (Alembic migrations in
``crowdwatch.store.migrations``).
"""

from crowdwatch.store.open import DEFAULT_STORE_NAME, open_store
from crowdwatch.store.records import (
    CAMERA_STATES,
    ROLES,
    RUN_KINDS,
    AlertAction,
    AuditEntry,
    CameraEvent,
    CameraHealth,
    ConfigChange,
    ConfigVersion,
    Gap,
    Lease,
    MetricSample,
    RecordingEntry,
    Retention,
    Run,
    StoredAlert,
    User,
    WebhookDelivery,
)
from crowdwatch.store.sinks import (
    StoreAlertSink,
    StoreMetricsWriter,
    WallClock,
    alert_at_wall_time,
    metric_sample,
)
from crowdwatch.store.sql import SqlStore, StoreError

Store = SqlStore

__all__ = [
    "CAMERA_STATES",
    "DEFAULT_STORE_NAME",
    "ROLES",
    "RUN_KINDS",
    "AlertAction",
    "AuditEntry",
    "CameraEvent",
    "CameraHealth",
    "ConfigChange",
    "ConfigVersion",
    "Gap",
    "Lease",
    "MetricSample",
    "RecordingEntry",
    "Retention",
    "Run",
    "SqlStore",
    "Store",
    "StoreAlertSink",
    "StoreError",
    "StoreMetricsWriter",
    "StoredAlert",
    "User",
    "WallClock",
    "WebhookDelivery",
    "alert_at_wall_time",
    "metric_sample",
    "open_store",
]
