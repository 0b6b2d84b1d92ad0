"""What processes receive: raster and vector cube conventions, plain values, geometries, time intervals.
May import ``processes.core`` only."""
