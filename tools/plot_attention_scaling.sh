#!/usr/bin/env bash
# Draws docs/attention_scaling.png from the CSV written by
#   build/release/bench/attention_scaling --csv attention_scaling.csv
# usage: tools/plot_attention_scaling.sh attention_scaling.csv docs/attention_scaling.png
# Needs gnuplot (Debian: gnuplot-nox).
set -euo pipefail
csv=${1:?csv file}
out=${2:?output png}
command -v gnuplot >/dev/null || { echo "gnuplot not found: apt-get install gnuplot-nox" >&2; exit 1; }
gnuplot <<GP
set datafile separator ","
set terminal pngcairo size 1200,480 font ",10"
set output "$out"
set multiplot layout 1,2 title "Attention, 8 heads x 64, batch 1, fp32, 2 threads (forward + backward)"
set logscale xy 2
set key top left
set grid
set xlabel "sequence length n"
set ylabel "time (ms)"
plot "$csv" using 1:(strcol(2) eq "reference" ? \$4 : 1/0) with linespoints title "reference", \
     "$csv" using 1:(strcol(2) eq "fused" ? \$4 : 1/0) with linespoints title "fused", \
     "$csv" using 1:(strcol(2) eq "local" ? \$4 : 1/0) with linespoints title "local (w = 256)"
set ylabel "peak extra memory (MiB)"
set logscale y 10
set yrange [0.1:*]
plot "$csv" using 1:(strcol(2) eq "reference" ? (\$6 > 0.1 ? \$6 : 0.1) : 1/0) with linespoints title "reference", \
     "$csv" using 1:(strcol(2) eq "fused" ? (\$6 > 0.1 ? \$6 : 0.1) : 1/0) with linespoints title "fused", \
     "$csv" using 1:(strcol(2) eq "local" ? (\$6 > 0.1 ? \$6 : 0.1) : 1/0) with linespoints title "local (w = 256)"
unset multiplot
GP
echo "wrote $out"
