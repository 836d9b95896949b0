-- The standard normal distribution function, for the one-sided test of a P1 excess (SPEC 4.5).
-- Abramowitz and Stegun 26.2.17: absolute error below 7.5e-8; beyond 37 sigma it is 0 or 1 (no underflow).
create or replace function chat_v11.normal_cdf(p_z double precision)
returns double precision
language sql
immutable
strict
parallel safe
as $$
    select case when p_z >= 0 then 1 - tail else tail end
      from (
          select pg_catalog.exp(-0.5 * z * z) / pg_catalog.sqrt(2 * pg_catalog.pi())
                 * t * (0.319381530 + t * (-0.356563782 + t * (1.781477937 + t * (-1.821255978 + t * 1.330274429))))
                     as tail
            from (select least(abs(p_z), 37) as z, 1 / (1 + 0.2316419 * least(abs(p_z), 37)) as t) as arg
      ) as q
$$;

revoke all on function chat_v11.normal_cdf(double precision) from public;
comment on function chat_v11.normal_cdf(double precision) is
'Standard normal CDF (Abramowitz-Stegun 26.2.17), used for the significance of a P1 excess.';
