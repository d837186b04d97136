"""``python -m worldpool``: the same command line as the ``worldpool`` script."""

from worldpool.cli import main

if __name__ == "__main__":
    main()
