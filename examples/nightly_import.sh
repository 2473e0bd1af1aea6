#!/bin/sh
# Nightly import of a shop's exports, for cron:
#   15 2 * * *  /path/to/nightly_import.sh /srv/exports >> /var/log/salescrm-import.log 2>&1
#
# Safe to run every night: each import is all or nothing, a file imported before is
# skipped, and a second run while one is still going exits 75 at once.  Rows that
# cannot be imported go to a 0600 rejects file next to the export, for a person to fix.
# Exit codes: 0 ok, 65 invalid rows (nothing imported), 66 file missing, 75 busy.
set -u
dir="${1:?usage: nightly_import.sh EXPORT_DIR}"
day="$(date +%Y-%m-%d)"
status=0

run() {  # run ENTITY FILE [options...]
    entity="$1"; file="$2"; shift 2
    [ -f "$file" ] || { echo "$day $entity: no file $file, skipped"; return 0; }
    if salescrm -q import "$entity" "$file" --json --rejects "$dir/rejected-$entity-$day.csv" "$@" \
        > "$dir/import-$entity-$day.json"; then
        echo "$day $entity: $(cat "$dir/import-$entity-$day.json")"
    else
        code=$?
        echo "$day $entity: failed with exit $code"
        [ "$code" -eq 75 ] && exit 75   # another import is running: try again tomorrow
        status=$code
    fi
}

# Customers and products first, so that orders find them; payments last.
run customers "$dir/customers.csv" --map-file "$dir/customers.toml"
run products  "$dir/products.csv"
run orders    "$dir/orders.csv" --map-file "$dir/orders.toml" --create-missing
run payments  "$dir/payments.csv"
exit "$status"
