"""`python -m plugin` is `okaeri`."""
from plugin.cli import main

main()
