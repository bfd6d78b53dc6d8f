"""The script ``crowdwatch console`` hands to ``streamlit run`` (the repo's ``app.py`` twin)."""

from crowdwatch.console.app import main

main()
