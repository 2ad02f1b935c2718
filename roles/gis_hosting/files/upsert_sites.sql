INSERT INTO sites AS s (id, name, kind, address, users, geom)
SELECT i.id, i.name, i.kind, i.address, i.users,
       ST_SetSRID(ST_MakePoint(i.lon, i.lat), 4326)
FROM jsonb_to_recordset(%(sites)s::jsonb)
     AS i(id text, name text, kind text, address text, users integer,
          lon double precision, lat double precision)
ON CONFLICT (id) DO UPDATE
SET name = EXCLUDED.name, kind = EXCLUDED.kind, address = EXCLUDED.address,
    users = EXCLUDED.users, geom = EXCLUDED.geom
WHERE (s.name, s.kind, s.address, s.users, ST_AsEWKB(s.geom))
      IS DISTINCT FROM
      (EXCLUDED.name, EXCLUDED.kind, EXCLUDED.address, EXCLUDED.users, ST_AsEWKB(EXCLUDED.geom))
