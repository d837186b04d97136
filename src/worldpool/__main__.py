"""``python -m worldpool``: the same command line as the ``worldpool`` script."""

from worldpool.cli.app import main

if __name__ == "__main__":
    main()
