"""The steps of ``fleetcare demo`` beyond services and the simulated fleet.

Each module holds one step (``title`` and ``run(demo)``, see ``fleetcare.cli.demo``):
the failure model (:mod:`.model_step`), scoring (:mod:`.scoring_step`), the care engine and
its webhooks (:mod:`.care_step`, :mod:`.webhook_receiver`), the API and console
(:mod:`.api_step`), the live view (:mod:`.live_view`) and the final accounting against the
simulator's ground truth (:mod:`.outcome`, :mod:`.finish_step`).
"""
