"""The crowdwatch operator console: ``streamlit run app.py -- --store out/demo/crowdwatch.db``.

``crowdwatch console`` runs this for you. See :mod:`crowdwatch.console`.
"""

from crowdwatch.console.app import main

main()
