/*
 * Civil-date conversions after Howard Hinnant's days_from_civil and
 * civil_from_days algorithms: exact for the proleptic Gregorian calendar.
 */

#include "ug_time.h"


int64_t
ug_floor_div(int64_t a, int64_t b)
{
    int64_t  q;

    q = a / b;

    if ((a % b != 0) && ((a < 0) != (b < 0))) {
        q--;
    }

    return q;
}


int64_t
ug_days_from_civil(int64_t y, int m, int d)
{
    int64_t   era, yoe, doy, doe;

    y -= m <= 2;
    era = ug_floor_div(y, 400);
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

    return era * 146097 + doe - 719468;
}


void
ug_civil_from_days(int64_t z, int64_t *year, int *month, int *day)
{
    int64_t  era, doe, yoe, doy, mp, y;
    int      m;

    z += 719468;
    era = ug_floor_div(z, 146097);
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    y = yoe + era * 400;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    m = (int) (mp < 10 ? mp + 3 : mp - 9);

    *year = y + (m <= 2);
    *month = m;
    *day = (int) (doy - (153 * mp + 2) / 5 + 1);
}


int32_t
ug_month_index(int64_t unix_sec)
{
    int64_t  year;
    int      month, day;

    ug_civil_from_days(ug_floor_div(unix_sec, 86400), &year, &month, &day);

    return (int32_t) (year * 12 + (month - 1));
}


int64_t
ug_month_start(int32_t month_index)
{
    int64_t  year;
    int      month;

    year = ug_floor_div(month_index, 12);
    month = (int) (month_index - year * 12) + 1;

    return ug_days_from_civil(year, month, 1) * 86400;
}


int64_t
ug_month_reset_seconds(int64_t unix_sec)
{
    return ug_month_start(ug_month_index(unix_sec) + 1) - unix_sec;
}


int
ug_days_in_month(int64_t year, int month)
{
    static const int  days[12] = { 31, 28, 31, 30, 31, 30,
                                   31, 31, 30, 31, 30, 31 };

    if (month < 1 || month > 12) {
        return 0;
    }

    if (month == 2
        && ((year % 4 == 0 && year % 100 != 0) || year % 400 == 0))
    {
        return 29;
    }

    return days[month - 1];
}


size_t
ug_month_key(int32_t month_index, char *buf)
{
    int64_t  year;
    int      month;

    year = ug_floor_div(month_index, 12);
    month = (int) (month_index - year * 12) + 1;

    if (year < 0 || year > 9999) {
        year = 0;
    }

    buf[0] = (char) ('0' + year / 1000);
    buf[1] = (char) ('0' + year / 100 % 10);
    buf[2] = (char) ('0' + year / 10 % 10);
    buf[3] = (char) ('0' + year % 10);
    buf[4] = '-';
    buf[5] = (char) ('0' + month / 10);
    buf[6] = (char) ('0' + month % 10);
    buf[7] = '\0';

    return UG_MONTH_KEY_LEN;
}
