"""``python -m bench.run`` (what ``make bench`` runs): the deployment-shape benchmark."""

from bench.deploy import main

if __name__ == "__main__":
    main()
