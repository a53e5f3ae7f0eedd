"""Rich rendering of run state and results; reads state, decides nothing."""
