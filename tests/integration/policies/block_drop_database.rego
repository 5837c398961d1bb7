# block_drop_database.rego — policy for run_matrix.py's policy_block scenario.
# SPEC §5.1 first generation: Rego v0 with `in` and no import; any call that
# offers the model a `drop_database` tool is denied with this reason.
package xenovia.policy

default allow = true

deny[msg] {
    some t in input.tool_names
    t == "drop_database"
    msg := "drop_database is not allowed"
}
