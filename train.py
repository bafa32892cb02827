"""Train one configuration, or a sweep with -m: ``python train.py schedule=step``."""

from lrexp.cli import train_main

if __name__ == "__main__":
    train_main()
