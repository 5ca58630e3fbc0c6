"""The backend-to-device direction: desired configuration and commands, and the answers.

The API (and ``fleetcare downlink command``) only write rows: a twin's new desired version,
a queued command. The ``downlink`` service (``fleetcare downlink run``, part of
``fleetcare up``) publishes them on the devices' ``config/desired`` (retained) and
``commands`` topics, marks each once the broker acknowledged it, and records what the
devices answer on ``config/reported`` and ``commands/reply``. Nothing is lost while the
service, the broker or a device is away: rows wait in the database, answers in the
service's persistent MQTT session.
"""
