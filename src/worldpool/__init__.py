"""worldpool: route AI-agent work to the right worker anywhere in the world."""
__version__ = "0.1.0"
