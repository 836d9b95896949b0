-- The scribe's record: a fact, a decision, an action, the client fallback confirmed, or the root cause by layer
-- ('layer: cause', both named: RO031 without either).
create or replace function public.chat_log_v11_incident(p_incident_id bigint, p_kind text, p_text text)
returns table (entry_id bigint, incident_id bigint, at timestamptz, recorded_by text, kind text, body text)
language plpgsql
volatile
security definer
set search_path = pg_catalog, chat_v11, pg_temp
as $$
#variable_conflict use_column
declare
    v_text text := chat_v11.checked_reason(p_text);
    v_entry chat_v11.incident_entry;
    v_layer text;
begin
    perform chat_v11.begin_write('chat_log_v11_incident');
    perform chat_v11.incident_for_change(p_incident_id);
    if p_kind is null or p_kind not in ('fact', 'decision', 'action', 'fallback_confirmed', 'root_cause') then
        raise exception using
            errcode = 'RO031',
            message = format('unknown timeline entry kind %s', chat_v11.shown(p_kind)),
            detail = 'Kinds: fact, decision, action, fallback_confirmed (the client fallback is confirmed), '
                || 'root_cause (''layer: cause'', layer one of backend, frontend, sre, database, network).',
            hint = 'For example: chat_log_v11_incident(7, ''decision'', ''keep the kill switch on'').';
    end if;
    if p_kind = 'root_cause' then
        v_layer := lower(split_part(v_text, ':', 1));
        if v_layer not in ('backend', 'frontend', 'sre', 'database', 'network') or position(':' in v_text) = 0 then
            raise exception using
                errcode = 'RO031',
                message = 'a root cause names its layer first',
                detail = 'Layers: backend (commit path, idempotency, receipt emission), frontend (fallback state '
                    || 'machine, pending/drift), sre (lag, throttling, saturation), database, network.',
                hint = 'For example: ''backend: receipt not emitted for duplicate ACKs''.';
        end if;
        -- ... then the cause itself, after the colon: visible text, not only blanks or invisible characters
        if chat_v11.is_blank(substr(v_text, position(':' in v_text) + 1)) then
            raise exception using
                errcode = 'RO031',
                message = format('a root cause names its cause after the layer: %s has none', chat_v11.shown(v_text)),
                detail = 'A root cause is ''layer: cause''; the text after the colon is empty or shows nothing.',
                hint = 'For example: ''backend: receipt not emitted for duplicate ACKs''.';
        end if;
    end if;
    v_entry := chat_v11.incident_log(p_incident_id, p_kind, v_text,
                                     case when v_layer is not null then jsonb_build_object('layer', v_layer) end);
    return query select v_entry.entry_id, v_entry.incident_id, v_entry.at, v_entry.recorded_by, v_entry.kind,
                        v_entry.body;
end
$$;

revoke all on function public.chat_log_v11_incident(bigint, text, text) from public;
grant execute on function public.chat_log_v11_incident(bigint, text, text) to chat_rollout_operator;
comment on function public.chat_log_v11_incident(bigint, text, text) is
'Append to an incident''s UTC timeline: fact, decision (the IC''s, every 10 minutes), action, fallback_confirmed, '
'or root_cause (''layer: cause'', the layer and a cause both required, else RO031). Entries are never rewritten.';
