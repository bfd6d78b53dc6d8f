"""The operator console (Streamlit): live wall, camera, alerts, setup and review pages on the
store the engine fills.

Run it with ``crowdwatch console --store PATH [--recordings DIR]`` or
``streamlit run app.py -- --store PATH``. The pages are thin; the work is in plain modules:

- :mod:`~crowdwatch.console.auth`: password hashing (scrypt), roles, change rights.
- :mod:`~crowdwatch.console.charts`: samples and alerts as tables, trends, Altair charts.
- :mod:`~crowdwatch.console.pictures`: recorded frames with heat maps and zones at a moment.
- :mod:`~crowdwatch.console.whatif`: alert rules re-run on recorded metrics.
- :mod:`~crowdwatch.console.report`: CSV and printable HTML reports.
- :mod:`~crowdwatch.console.birdseye`: the ground-plane density view.
"""
