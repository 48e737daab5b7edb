# Throughput against the number of distinct owners (docs/benchmarks.md).
#   gnuplot docs/img/owners.gp      (from the top of the tree; Debian's
#                                    gnuplot-nox)
set terminal svg size 640,400 dynamic font "sans,11"
set output "docs/img/owners.svg"
set title "requests/s against distinct owners (2 workers, wrk -t2 -c50)"
set logscale x
set xrange [50000:2000000]
set xtics ("100,000" 100000, "1,000,000" 1000000)
set yrange [0:*]
set ylabel "requests/s"
set xlabel "distinct owners, all in the zone"
set key bottom right
set grid ytics
plot "docs/img/owners.dat" using 1:2 with linespoints title "ungated", \
     ""                    using 1:3 with linespoints title "usage_gate", \
     ""                    using 1:4 with linespoints title "limit_req, same keys"
