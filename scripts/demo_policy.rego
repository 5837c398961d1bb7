# demo_policy.rego — sample policy for scripts/demo.sh (SPEC §5.1, first generation).
# Denies any call that offers the model a `drop_database` tool: under the agent
# that call never leaves the process and the app reads a 403 (policy_block).
package xenovia.policy

default allow = true

deny[msg] {
    some t in input.tool_names
    t == "drop_database"
    msg := "drop_database is not allowed"
}
