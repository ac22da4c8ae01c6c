"""The chaos run: a mixed saga workload on a three-broker cluster while faults are injected,
then a verifier that reads every topic back and checks the guarantees."""
