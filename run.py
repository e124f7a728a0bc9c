"""latentrun: python run.py EXPERIMENT.yaml | --resume RUN | validate | predict ... (see --help)."""

from latentrun.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
