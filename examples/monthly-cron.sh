#!/usr/bin/env bash
# The monthly cycle for cron: upload the month's exports, check health, train, report.
# Stops at the first failure (its exit code is the script's); everything goes to a log
# per month under REPORTS/logs.
#
#   monthly-cron.sh INBOX REPORTS
#
# INBOX holds the month's sales exports (sales_*.xlsx|xls|csv) and one stock snapshot
# (stock_*.xlsx|xls|csv) taken the day after the last sale. Settings come from the usual
# places (PLASTINKA_DB, PLASTINKA_CONFIG, ./plastinka.toml). Example crontab line (06:00
# on the 2nd, after the shop's exports land on the 1st):
#
#   0 6 2 * * PLASTINKA_DB=/srv/shop/plastinka.db /srv/shop/monthly-cron.sh /srv/shop/inbox /srv/shop/reports
set -euo pipefail

inbox=${1:?usage: monthly-cron.sh INBOX REPORTS}
reports=${2:?usage: monthly-cron.sh INBOX REPORTS}
plastinka=${PLASTINKA:-plastinka}
month=$(date +%Y-%m)
mkdir -p "$reports/logs"
log="$reports/logs/$month.log"
exec >>"$log" 2>&1

echo "== $(date -Iseconds) monthly cycle, inbox $inbox"
stock=$(find "$inbox" -maxdepth 1 -type f -name 'stock_*' | sort | tail -n 1)
if [ -z "$stock" ]; then
    echo "no stock_* snapshot in $inbox"
    exit 2
fi

echo "-- upload"
"$plastinka" upload --stock "$stock" --sales "$inbox"

echo "-- health before training"
# 2 (unhealthy: gap, corrupt database) stops here; 1 (degraded: the model is behind the
# data, which training fixes) goes on.
status=0
"$plastinka" health || status=$?
if [ "$status" -ge 2 ]; then
    echo "unhealthy: stopping before training"
    exit "$status"
fi

echo "-- train"
"$plastinka" train

echo "-- report"
"$plastinka" report --format xlsx --output "$reports/forecast-$month.xlsx"
"$plastinka" report --format csv --output "$reports/forecast-$month.csv"

echo "-- health after training"
"$plastinka" health
echo "== $(date -Iseconds) done"
