"""The config layer: compose ``conf/`` (and its structured schemas), check a composed config
once (one line naming the key, exit 2), and build the run's parts and step plan from it.

Only this layer, the command-line entry points and the Hydra sweeper read the composed
config; the run (:mod:`lrexp.run`) and the building blocks below it get typed objects and
plain values.
"""
