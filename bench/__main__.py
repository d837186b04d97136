"""``python -m bench``: the deployment-shape benchmark (:mod:`bench.deploy`)."""

from bench.deploy import main

main()
