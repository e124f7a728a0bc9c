"""`python -m latentrun ...` is `python run.py ...`; parallel launches start their runs this way."""

from latentrun.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
