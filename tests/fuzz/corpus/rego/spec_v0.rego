package xenovia.policy
default allow = true
deny[msg] {
    some t in input.tool_names
    t == "drop_database"
    msg := "drop_database is not allowed"
}
deny[msg] {
    input.request_type == "chat_completions"
    some t in input.tool_names
    startswith(t, "write_")
    msg := sprintf("write tool %s not allowed on chat completions", [t])
}
allowed := {"gpt-4o", "gpt-4o-mini"}
deny[msg] {
    not allowed[input.model]
    msg := sprintf("model %s is not allowed", [input.model])
}
deny[msg] {
    input.stage == "response"
    contains(input.output.content, "I cannot help")
    msg := "refusal"
}
redact_fields := {"email", "ssn"}
