-- Validates an incident severity (playbook section 2) and returns it.
create or replace function chat_v11.checked_severity(p_severity text)
returns text
language plpgsql
immutable
as $$
begin
    if p_severity is null or p_severity not in ('P0', 'P1', 'P2') then
        raise exception using
            errcode = 'RO031',
            message = format('unknown severity %s', chat_v11.shown(p_severity)),
            detail = 'P0: write path lost or stuck, ACK -> receipt broken; P1: recovery/resync degraded without '
                || 'integrity loss; P2: version, schema or local errors without mass impact (playbook section 2).',
            hint = 'Pass ''P0'', ''P1'' or ''P2''.';
    end if;
    return p_severity;
end
$$;

revoke all on function chat_v11.checked_severity(text) from public;
comment on function chat_v11.checked_severity(text) is
'Returns the severity (P0, P1 or P2) or raises RO031.';
