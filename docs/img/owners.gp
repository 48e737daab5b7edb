# Throughput against the number of distinct owners (docs/benchmarks.md).
#   gnuplot docs/img/owners.gp      (from the top of the tree; Debian's
#                                    gnuplot-nox)
# reads docs/img/owners.dat, which `t/bench/bench.py --update-doc` writes
set terminal svg size 720,440 dynamic font "sans,11"
set output "docs/img/owners.svg"
set title "requests/s against distinct owners, 2 nginx workers"
set logscale x
set xrange [50000:2000000]
set xtics ("100,000" 100000, "1,000,000" 1000000)
set yrange [0:*]
set ylabel "requests/s"
set xlabel "distinct owners, all in the zone"
set key outside right center
set grid ytics
plot "docs/img/owners.dat" \
        using 1:5 with linespoints lt 1 pt 7 title "ungated, empty\\_gif", \
     "" using 1:6 with linespoints lt 2 pt 7 title "usage\\_gate, empty\\_gif", \
     "" using 1:7 with linespoints lt 3 pt 7 title "limit\\_req, empty\\_gif", \
     "" using 1:2 with linespoints lt 1 pt 5 dt 2 title "ungated, proxy hop", \
     "" using 1:3 with linespoints lt 2 pt 5 dt 2 title "usage\\_gate, proxy hop", \
     "" using 1:4 with linespoints lt 3 pt 5 dt 2 title "limit\\_req, proxy hop"
