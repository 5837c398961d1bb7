package xenovia
import rego.v1
default decision := {"action": "allow"}
decision := {"action": "block", "rule": "no-drop"} if "drop_database" in input.tool_names
